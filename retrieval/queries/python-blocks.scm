; The ":" that ends a Python block header: the statement (or clause) owning it
; opens an indented block. Used by hone.agent.policy to tell a real block opener
; (`def f(x):`, `else:`, `case _:`) from other line-final colons (dict values,
; slices, lambdas, annotations).

(function_definition ":" @opener)
(class_definition ":" @opener)
(if_statement ":" @opener)
(elif_clause ":" @opener)
(else_clause ":" @opener)
(for_statement ":" @opener)
(while_statement ":" @opener)
(with_statement ":" @opener)
(try_statement ":" @opener)
(except_clause ":" @opener)
(finally_clause ":" @opener)
(match_statement ":" @opener)
(case_clause ":" @opener)
