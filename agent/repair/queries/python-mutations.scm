; Mutation sites for hone.agent.repair.mutations, Python: where a single-point bug
; hides. The captures are read by name (the operator tables, the scoring and the
; rewriting stay in Python); captures starting with "_" only serve predicates.
;
;   @comparison.operator   an operator token of a comparison (chains have several)
;   @arithmetic.operator   the operator of a binary arithmetic expression
;   @arithmetic.augmented  the operator of an augmented assignment (+= -= ...)
;   @boolean.operator      `and` / `or`
;   @offbyone.literal      an integer literal
;   @offbyone.bound        an index, a slice bound, a range() argument
;   @offbyone.len          a len(...) call
;   @offbyone.plusone      `E + 1` / `E - 1`
;   @negation.condition    the condition of if / elif / while / a ternary / assert
;   @negation.not          a `not` expression
;   @swap.arguments        a call's argument list
;   @variable.use          an identifier (the template keeps the reads of local names)
;   @local.parameter       a parameter's name
;   @local.definition      a name bound by an assignment, a loop, `with ... as`,
;                          `except ... as` or `:=`
;   @scope                 a nested scope: its names are not the function's locals
;   @return.statement      a return statement
;   @return.yield          a yield: the function is a generator
;   @sibling.if / @sibling.try   statements whose branches may miss a sibling's statement

(comparison_operator operators: _ @comparison.operator)

(binary_operator operator: _ @arithmetic.operator)
(augmented_assignment operator: _ @arithmetic.augmented)

(boolean_operator operator: _ @boolean.operator)

(integer) @offbyone.literal
(subscript subscript: (_) @offbyone.bound)
(slice (_) @offbyone.bound)
(call
  function: (identifier) @_range
  arguments: (argument_list (_) @offbyone.bound)
  (#eq? @_range "range"))
(call
  function: (identifier) @_len
  (#eq? @_len "len")) @offbyone.len
(binary_operator
  operator: ["+" "-"]
  right: (integer) @_one
  (#eq? @_one "1")) @offbyone.plusone

(if_statement condition: (_) @negation.condition)
(elif_clause condition: (_) @negation.condition)
(while_statement condition: (_) @negation.condition)
(conditional_expression "if" . (_) @negation.condition)
(assert_statement "assert" . (_) @negation.condition)
(not_operator) @negation.not

(argument_list) @swap.arguments

(identifier) @variable.use

(parameters (identifier) @local.parameter)
(lambda_parameters (identifier) @local.parameter)
(default_parameter name: (identifier) @local.parameter)
(typed_parameter . (identifier) @local.parameter)
(typed_default_parameter name: (identifier) @local.parameter)
(parameters (list_splat_pattern (identifier) @local.parameter))
(parameters (dictionary_splat_pattern (identifier) @local.parameter))
(typed_parameter (list_splat_pattern (identifier) @local.parameter))
(typed_parameter (dictionary_splat_pattern (identifier) @local.parameter))
(assignment left: (identifier) @local.definition)
(augmented_assignment left: (identifier) @local.definition)
(for_statement left: (identifier) @local.definition)
(pattern_list (identifier) @local.definition)
(tuple_pattern (identifier) @local.definition)
(list_pattern (identifier) @local.definition)
(list_splat_pattern (identifier) @local.definition)
(as_pattern_target (identifier) @local.definition)
(as_pattern_target (_ (identifier) @local.definition))
(named_expression name: (identifier) @local.definition)

[(function_definition) (lambda) (class_definition)
 (list_comprehension) (set_comprehension) (dictionary_comprehension) (generator_expression)] @scope

(return_statement) @return.statement
(yield) @return.yield

(if_statement) @sibling.if
(try_statement) @sibling.try
