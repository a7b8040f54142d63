"""What the ValidatingAdmissionPolicy tests share: cel-python from .venv-cel (the test re-runs
itself there; exit 77 with what to install when it is missing), loading an optional manifest,
and evaluating a policy's matchConditions and validations against a request."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_PYTHON = os.path.join(ROOT, ".venv-cel", "bin", "python3")


def require_cel(script):
    """Imports celpy and yaml, re-running `script` under .venv-cel when they are missing."""
    try:
        import celpy  # noqa: F401
        import yaml  # noqa: F401
    except ImportError:
        # The venv's python3 is a symlink to Debian's: tell them apart by the prefix.
        if os.path.exists(VENV_PYTHON) and os.path.realpath(sys.prefix) != os.path.realpath(
                os.path.join(ROOT, ".venv-cel")):
            os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(script)])
        print("SKIP: cel-python is not installed; run scripts/install-deps.sh (it installs "
              "tests/deploy/requirements-cel.txt into .venv-cel with pip --require-hashes)")
        sys.exit(77)


def load_optional(name):
    import yaml
    path = os.path.join(ROOT, "deploy", "optional", name)
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


class PolicyEvaluator:
    """A ValidatingAdmissionPolicy's CEL under cel-python."""

    def __init__(self, policy):
        import celpy
        self.celpy = celpy
        self.spec = policy["spec"]
        self.env = celpy.Environment()

    def evaluate(self, expression, obj, request, old=None):
        celpy = self.celpy
        program = self.env.program(self.env.compile(expression))
        result = program.evaluate({
            "object": celpy.json_to_cel(obj),
            "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel(request),
        })
        if not isinstance(result, celpy.celtypes.BoolType):
            raise AssertionError(f"{expression} -> {result!r}")
        return bool(result)

    def failing(self, obj, request, old=None):
        """Indexes of the validations `obj` fails, or None when no matchCondition matches."""
        if not all(self.evaluate(c["expression"], obj, request, old)
                   for c in self.spec["matchConditions"]):
            return None
        return [i for i, v in enumerate(self.spec["validations"])
                if not self.evaluate(v["expression"], obj, request, old)]
