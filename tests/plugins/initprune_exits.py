"""A plugin that calls sys.exit(0) while it is imported: every command must fail naming it,
never end with status 0 and nothing said."""

import sys

sys.exit(0)
