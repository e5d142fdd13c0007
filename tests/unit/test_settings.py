"""Settings come from ASSISTANT_* variables (and an optional TOML file); bad values name the variable only."""

from pathlib import Path

import pytest

from assistant.settings import Settings, SettingsError


def test_defaults_are_the_embedded_sqlite_without_a_model() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite")
    assert settings.is_sqlite and not settings.llm_configured


@pytest.mark.parametrize(("variable", "value", "field", "expected"), [
    ("ASSISTANT_DATABASE_URL", "postgresql://u@h/db", "database_url", "postgresql://u@h/db"),
    ("ASSISTANT_LLM_TIMEOUT_SECONDS", "2.5", "llm_timeout_seconds", 2.5),
    ("ASSISTANT_LLM_MAX_ATTEMPTS", "7", "llm_max_attempts", 7),
    ("ASSISTANT_DEBUG", "yes", "debug", True),
    ("ASSISTANT_DEBUG", "0", "debug", False),
    ("ASSISTANT_WEBHOOK_RETRY_SCHEDULE", "1,2,3", "webhook_retry_schedule", (1.0, 2.0, 3.0)),
])
def test_variables_are_typed(variable: str, value: str, field: str, expected: object) -> None:
    assert getattr(Settings.from_env({variable: value}), field) == expected


def test_openai_api_key_is_the_fallback_for_the_model_key() -> None:
    assert Settings.from_env({"OPENAI_API_KEY": "sk-x"}).llm_api_key == "sk-x"
    assert Settings.from_env({"OPENAI_API_KEY": "sk-x", "ASSISTANT_LLM_API_KEY": "own"}).llm_api_key == "own"


def test_a_bad_value_names_the_variable_not_the_value() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ASSISTANT_LLM_MAX_ATTEMPTS": "secret-looking-value"})
    assert "ASSISTANT_LLM_MAX_ATTEMPTS" in str(caught.value)
    assert "secret-looking-value" not in str(caught.value)


def test_toml_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('llm_model = "from-file"\nllm_max_attempts = 2\n')
    settings = Settings.from_env({"ASSISTANT_SETTINGS_FILE": str(path), "ASSISTANT_LLM_MODEL": "from-env"})
    assert settings.llm_model == "from-env" and settings.llm_max_attempts == 2


def test_toml_file_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('llm_modle = "typo"\n')
    with pytest.raises(SettingsError, match="llm_modle"):
        Settings.from_env({"ASSISTANT_SETTINGS_FILE": str(path)})


def test_the_token_limit_parameter_is_one_of_the_two_names_models_accept() -> None:
    assert Settings.from_env({"ASSISTANT_LLM_TOKEN_LIMIT_PARAMETER": "max_completion_tokens"}
                             ).llm_token_limit_parameter == "max_completion_tokens"
    with pytest.raises(SettingsError, match="ASSISTANT_LLM_TOKEN_LIMIT_PARAMETER must be max_tokens or"):
        Settings.from_env({"ASSISTANT_LLM_TOKEN_LIMIT_PARAMETER": "max_length"})


def test_the_database_pool_holds_at_least_one_connection() -> None:
    assert Settings.from_env({}).database_pool_size == 10
    assert Settings.from_env({"ASSISTANT_DATABASE_POOL_SIZE": "3"}).database_pool_size == 3
    with pytest.raises(SettingsError, match="ASSISTANT_DATABASE_POOL_SIZE must be at least 1"):
        Settings.from_env({"ASSISTANT_DATABASE_POOL_SIZE": "0"})
