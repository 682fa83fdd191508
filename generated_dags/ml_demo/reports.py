"""Stand-in publishing and alerting: print what a real pipeline would send."""


def publish(task_id: str, value: float, channel: str) -> str:
    """Announce the winning model (it arrives as task_id and value keyword arguments)."""
    message = f"[{channel}] best model {task_id} scored {value}"
    print(message)
    return message


def notify(context: dict) -> None:
    """A DAG callback: Airflow passes the run's context."""
    print(f"run {context['run_id']} finished")
