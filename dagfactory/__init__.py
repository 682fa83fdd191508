"""dagfactory: render declarative YAML train-and-choose pipelines into DAG files for Airflow 2.10 to 3.4."""

__version__ = "0.1.0"
