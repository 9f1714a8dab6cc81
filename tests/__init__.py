"""The test suite, laid out like the code: unit, integration, reliability and docs; the
helpers several of them use are in support."""
