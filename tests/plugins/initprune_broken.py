"""A plugin that fails to import: the error must be one line naming it."""

raise ImportError("this plugin needs a package that is not installed")
