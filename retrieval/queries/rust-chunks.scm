; Definitions for the repository index (hone.retrieval.chunks), Rust.
; The captures are described in python-chunks.scm.

(function_item
  name: (identifier) @name
  body: (block) @body) @definition.function

(struct_item
  name: (type_identifier) @name) @definition.type

(enum_item
  name: (type_identifier) @name) @definition.type

(union_item
  name: (type_identifier) @name) @definition.type

(trait_item
  name: (type_identifier) @name) @definition.type

(type_item
  name: (type_identifier) @name) @definition.type

; impl blocks name their methods (Type.method); `impl Trait for Type` uses the Type.
(impl_item
  type: [(type_identifier) @name
         (generic_type type: (type_identifier) @name)
         (scoped_type_identifier name: (type_identifier) @name)
         (generic_type type: (scoped_type_identifier name: (type_identifier) @name))
         (reference_type type: (type_identifier) @name)]) @scope

; Doc comments (///) and attributes (#[derive(...)]) directly above an item are its own.
(line_comment) @leading

(block_comment) @leading

(attribute_item) @leading
