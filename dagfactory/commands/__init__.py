"""The commands of ``dagfactory``, one module each: its arguments, and what it does.

Each module declares a :class:`~dagfactory.commands.arguments.Command` (its name,
help, arguments and run function) beside the function that does the work, from its
arguments to an :class:`~dagfactory.report.Outcome`: it runs the stages in order
(discover → compile → plan → write, or a tool) and says what happened as data. No
command prints; :mod:`dagfactory.report` does, in the format asked for. Errors that
end a command at once are raised as :class:`~dagfactory.problems.DagfactoryError`.

The modules behind check, run, graph, init and schema (Airflow's runner, drawings) are
imported by their commands only when they run: render, the command run on every
commit, does not pay for them.
"""

from __future__ import annotations

from dagfactory.commands import check, graph, init, render, run, schema, validate
from dagfactory.commands.arguments import Command

COMMANDS: tuple[Command, ...] = tuple(
    module.COMMAND for module in (render, validate, run, check, graph, init, schema)
)
