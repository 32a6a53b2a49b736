"""End-to-end tests of the ``skelem`` command."""
