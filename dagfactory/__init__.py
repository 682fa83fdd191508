"""dagfactory: render declarative YAML train-and-choose pipelines into Airflow 3 DAG files."""

__version__ = "0.1.0"
