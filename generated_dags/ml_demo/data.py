"""Stand-in data step: returns a small summary, as a real download would return a path."""


def fetch(rows: int) -> int:
    """Pretend to download ``rows`` rows and report how many arrived."""
    print(f"fetched {rows} rows")
    return rows


def fetch_labels(source: str) -> str:
    """Pretend to fetch the labels and report where they came from."""
    print(f"fetched labels from {source}")
    return source
