"""Checkpoint files of a co-teaching net: network 2 and its optimizer beside skorch's files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skorch.history import History

__all__ = ["CompanionFilesMixin"]


def _companion_path(path: Any, suffix: str) -> Any:
    """``dir/params.pt`` -> ``dir/params_module2.pt`` (the file of the second network)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    p = Path(path)
    out = p.with_name(f"{p.stem}_{suffix}{p.suffix}")
    return str(out) if isinstance(path, str) else out


class CompanionFilesMixin:
    """``save_params`` / ``load_params`` that also write and read network 2's companion files.

    ``p.pt`` → ``p_module2.pt`` for ``module2_``, ``opt.pt`` → ``opt_optimizer2.pt`` for
    ``optimizer2_``; explicit ``f_module2`` / ``f_optimizer2`` take precedence. On loading, a
    companion is read only when its file exists. For a skorch ``NeuralNet`` subclass with those
    attributes (skorch saves every ``<name>_`` module and optimizer it is given a file for).
    """

    def save_params(
        self,
        f_params: Any = None,
        f_optimizer: Any = None,
        f_criterion: Any = None,
        f_history: Any = None,
        use_safetensors: bool = False,
        **kwargs: Any,
    ) -> None:
        """skorch's ``save_params``; network 2 and its optimizer go to companion files (see the class)."""
        kwargs = self._with_companions(
            {"f_params": f_params, "f_optimizer": f_optimizer, **kwargs}, must_exist=False
        )
        kwargs.pop("f_params", None)
        kwargs.pop("f_optimizer", None)
        super().save_params(
            f_params=f_params,
            f_optimizer=f_optimizer,
            f_criterion=f_criterion,
            f_history=f_history,
            use_safetensors=use_safetensors,
            **kwargs,
        )

    def load_params(
        self,
        f_params: Any = None,
        f_optimizer: Any = None,
        f_criterion: Any = None,
        f_history: Any = None,
        checkpoint: Any = None,
        use_safetensors: bool = False,
        **kwargs: Any,
    ) -> None:
        """skorch's ``load_params``; also loads network 2 from its companion files when present."""
        files: dict[str, Any] = {}
        if checkpoint is not None:
            if not self.initialized_:
                self.initialize()
            if f_history is None and checkpoint.f_history is not None:
                # skorch formats the checkpoint's file names from the restored history
                self.history = History.from_file(checkpoint.f_history_)
            files.update(checkpoint.get_formatted_files(self))
        files.update(kwargs)
        files.update({k: v for k, v in (("f_params", f_params), ("f_optimizer", f_optimizer)) if v})
        companions = self._with_companions(files, must_exist=True)
        kwargs.update({k: v for k, v in companions.items() if k not in files})
        super().load_params(
            f_params=f_params,
            f_optimizer=f_optimizer,
            f_criterion=f_criterion,
            f_history=f_history,
            checkpoint=checkpoint,
            use_safetensors=use_safetensors,
            **kwargs,
        )

    @staticmethod
    def _with_companions(files: dict[str, Any], *, must_exist: bool) -> dict[str, Any]:
        out = dict(files)
        pairs = (
            ("f_module2", files.get("f_params") or files.get("f_module"), "module2"),
            ("f_optimizer2", files.get("f_optimizer"), "optimizer2"),
        )
        for key, base, suffix in pairs:
            if out.get(key) is not None or base is None:
                continue
            path = _companion_path(base, suffix)
            if path is None or (must_exist and not Path(path).exists()):
                continue
            out[key] = path
        return out
