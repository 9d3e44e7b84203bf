"""The report layer: results read back into statistics, claims, figures and the report page. It
imports the core and the lab."""
