; Definitions for the repository index (hone.retrieval.chunks), Python.
;
; Captures (the same in every <language>-chunks.scm):
;   @definition.function / .method / .class / .type   the definition's node
;   @name      its name (qualified by the enclosing definitions in code)
;   @body      the block after the header: the signature stops where it starts
;   @doc       a docstring, appended to the signature
;   @receiver  a prefix for the name (Go method receivers)
;   @scope     a node that names and encloses definitions without being one (Rust impl)
;   @wrapper   a node around the definition (decorators, `export`) that the chunk spans;
;              with @wrapped when the pattern has no definition capture
;   @leading   comments and attributes: directly above a definition they join its chunk;
;              at the end of a block they do not extend it
; Matches on the same definition node are merged, so optional parts get their own pattern.

(function_definition
  name: (identifier) @name
  body: (block) @body) @definition.function

(class_definition
  name: (identifier) @name
  body: (block) @body) @definition.class

(function_definition
  body: (block . (expression_statement (string) @doc))) @definition.function

(class_definition
  body: (block . (expression_statement (string) @doc))) @definition.class

; Decorators belong to the chunk: it starts at the first one.
(decorated_definition
  definition: (_) @wrapped) @wrapper

(comment) @leading
