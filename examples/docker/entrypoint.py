"""A trainer's command in Docker: its arguments from the environment, its metric last."""

import json
import os
import sys

depth = int(os.environ["depth"])  # an op_kwargs value, as text
rows = json.loads(os.environ["rows"])  # what the download returned (inputs)
print(f"training depth={depth} on {rows}", file=sys.stderr)  # logs: any time before
accuracy = 1 - 1 / (depth * sum(rows))
artifact = f"/models/depth_{depth}.json"  # on a mount: the worker's host sees it
with open(artifact, "w") as file:
    json.dump({"depth": depth}, file)
print(json.dumps({"accuracy": accuracy, "artifact": artifact}))  # the last line
