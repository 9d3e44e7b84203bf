"""The commit an execution records, by the name the report imports it under; the runs themselves
are the point store's (``points``), the commit the lab root's (``root.git_commit``)."""

from .root import git_commit  # noqa: F401
