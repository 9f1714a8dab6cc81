"""Tests of one module each, in this process: no other processes, servers or network."""
