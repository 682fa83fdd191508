"""The command of the digits trainers in Docker: ml_demo.digits.train in a container.

Its arguments arrive as environment variables (the trainer's op_kwargs and inputs, as
text): ``estimator``, ``data_path``, and each hyperparameter the estimator takes. Its
result leaves as the metric contract says: JSON on the last line of output.
"""

import json
import os

from ml_demo.digits import ESTIMATORS, train


def parsed(text: str):
    """``10.0`` as a number, ``true`` as a boolean; other text as it is."""
    try:
        return json.loads(text)
    except ValueError:
        return text


estimator = os.environ["estimator"]
accepted = ESTIMATORS[estimator][0]().get_params()
hyperparameters = {
    name: parsed(os.environ[name]) for name in accepted if name in os.environ
}
result = train(os.environ["data_path"], estimator, **hyperparameters)
print(
    json.dumps({"accuracy": float(result["accuracy"]), "artifact": result["artifact"]})
)
