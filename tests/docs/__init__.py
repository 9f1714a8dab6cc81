"""Tests of the documentation: the pages build and their examples run, and the layers
the architecture page describes are the ones the imports follow."""
