"""``model=`` is a keyword on every client call; the older positional form still works.

Calls were once ``t.completion("qwen", "Hi")`` (the model first, ``None`` for the
default). They are now ``t.completion("Hi", model="qwen")``. A call that passes one
positional argument more than the new signature takes is read the old way, with a
``DeprecationWarning`` pointing at the caller's line.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def model_keyword(positional: int) -> Callable[[F], F]:
    """Accept ``(model, *args)`` for a method whose own positionals are ``positional``."""

    def decorate(method: F) -> F:
        name = method.__name__

        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) == positional + 1:
                if "model" in kwargs:
                    raise TypeError(f"{name}() got the model both positionally and as model=")
                warnings.warn(
                    f"{name}(model, ...) is deprecated; pass the model as a keyword: "
                    f"{name}(..., model=...)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs["model"] = args[0]
                args = args[1:]
            return method(self, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
