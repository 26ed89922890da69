; Definitions for the repository index (hone.retrieval.chunks), Go.
; The captures are described in python-chunks.scm.

(function_declaration
  name: (identifier) @name) @definition.function

(function_declaration
  body: (block) @body) @definition.function

; func (s *Stack[T]) Push(v T): named Stack.Push
(method_declaration
  name: (field_identifier) @name) @definition.method

(method_declaration
  body: (block) @body) @definition.method

(method_declaration
  receiver: (parameter_list
    (parameter_declaration
      type: [(type_identifier) @receiver
             (pointer_type (type_identifier) @receiver)
             (generic_type type: (type_identifier) @receiver)
             (pointer_type (generic_type type: (type_identifier) @receiver))]))) @definition.method

; Structs, interfaces and other named types; a body-less definition's signature is its text.
(type_spec
  name: (type_identifier) @name) @definition.type

(type_alias
  name: (type_identifier) @name) @definition.type

; `type X struct {...}` alone: the chunk spans the `type` keyword (a group `type (...)`
; of several specs does not).
(type_declaration
  .
  (_) @wrapped
  .) @wrapper

(comment) @leading
