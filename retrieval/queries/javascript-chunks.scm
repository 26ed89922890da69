; Definitions for the repository index (hone.retrieval.chunks), JavaScript and JSX.
; The captures are described in python-chunks.scm.

(function_declaration
  name: (identifier) @name
  body: (statement_block) @body) @definition.function

(generator_function_declaration
  name: (identifier) @name
  body: (statement_block) @body) @definition.function

(class_declaration
  name: (identifier) @name
  body: (class_body) @body) @definition.class

(class_body
  (method_definition
    name: (_) @name
    body: (statement_block) @body) @definition.method)

; handle = (event) => { ... } as a class field
(class_body
  (field_definition
    property: (_) @name
    value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])
  @definition.method)

; const f = (...) => ... and const f = function (...) {...}, at the top level or exported
(program
  (lexical_declaration
    (variable_declarator
      name: (identifier) @name
      value: [(arrow_function body: (_) @body)
              (function_expression body: (_) @body)
              (generator_function body: (_) @body)]) @definition.function) @wrapper)

(program
  (variable_declaration
    (variable_declarator
      name: (identifier) @name
      value: [(arrow_function body: (_) @body)
              (function_expression body: (_) @body)
              (generator_function body: (_) @body)]) @definition.function) @wrapper)

(export_statement
  (lexical_declaration
    (variable_declarator
      name: (identifier) @name
      value: [(arrow_function body: (_) @body)
              (function_expression body: (_) @body)
              (generator_function body: (_) @body)]) @definition.function) @wrapper)

; `export` (and `export default`, and decorators before it) belong to the chunk.
(export_statement
  declaration: (_) @wrapped) @wrapper

(comment) @leading
