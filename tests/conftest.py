pytest_plugins = ["tests.support.fake_llm"]
