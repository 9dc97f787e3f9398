pytest_plugins = ["bench.pytest_plugin"]
