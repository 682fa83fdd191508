"""What dagfactory does besides compiling: load DAG files in Airflow, run one, draw one, start a config.

Each tool is imported by its command only, so ``render``, the command run on every
commit, pays for none of them.
"""
