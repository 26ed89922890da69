from hone.server.options import Options, apply_settings, describe


def test_defaults_and_camel_case_settings_apply():
    opts, problems = apply_settings(Options(), {"maxNewTokensSingle": 16, "multiline": False})
    assert problems == []
    assert opts.max_new_tokens_single == 16 and opts.multiline is False
    assert Options().max_new_tokens_single == 32  # defaults untouched


def test_alias_and_hone_section():
    opts, problems = apply_settings(Options(), {"hone": {"maxNewTokens": 40}})
    assert problems == [] and opts.max_new_tokens_multi == 40


def test_bad_values_are_reported_and_defaults_kept():
    opts, problems = apply_settings(
        Options(),
        {
            "maxNewTokens": "many",
            "debounceMs": -1,
            "multiline": "yes",
            "contextTokens": 1.5,
            "bogus": 1,
        },
    )
    assert opts == Options()
    joined = "\n".join(problems)
    for key in ("maxNewTokens", "debounceMs", "multiline", "contextTokens", "bogus"):
        assert key in joined
    assert "keeping 96" in joined and "unknown setting 'bogus'" in joined


def test_non_object_settings_and_none():
    assert apply_settings(Options(), None) == (Options(), [])
    opts, problems = apply_settings(Options(), [1, 2])
    assert opts == Options() and "must be an object" in problems[0]


def test_every_option_is_documented():
    for name, _default, doc in describe():
        assert doc, name
