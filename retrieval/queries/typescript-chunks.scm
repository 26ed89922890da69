; Definitions for the repository index (hone.retrieval.chunks), TypeScript and TSX.
; The captures are described in python-chunks.scm.

(function_declaration
  name: (identifier) @name
  body: (statement_block) @body) @definition.function

(generator_function_declaration
  name: (identifier) @name
  body: (statement_block) @body) @definition.function

; declare function f(x: number): void; and overload signatures
(function_signature
  name: (identifier) @name) @definition.function

(class_declaration
  name: (type_identifier) @name
  body: (class_body) @body) @definition.class

(abstract_class_declaration
  name: (type_identifier) @name
  body: (class_body) @body) @definition.class

(class_body
  (method_definition
    name: (_) @name
    body: (statement_block) @body) @definition.method)

; handle = (event: Event) => { ... } as a class field
(class_body
  (public_field_definition
    name: (_) @name
    value: [(arrow_function body: (_) @body) (function_expression body: (_) @body)])
  @definition.method)

(interface_declaration
  name: (type_identifier) @name) @definition.type

(type_alias_declaration
  name: (type_identifier) @name) @definition.type

(enum_declaration
  name: (identifier) @name) @definition.type

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

; `export` (and decorators before it) and `declare` belong to the chunk.
(export_statement
  declaration: (_) @wrapped) @wrapper

(ambient_declaration
  (_) @wrapped) @wrapper

(comment) @leading
