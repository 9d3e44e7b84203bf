"""The lab layer: the MLflow store, point runs, grids, notebook executions, sweep profiles and the
executors they run on. It imports the core, never the report layer."""
