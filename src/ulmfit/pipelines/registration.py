"""Pipelines for tasks transformers does not have (or has removed), served two ways from one saved folder.

`register_custom_pipeline(task, pipeline_class, model_class, pt_model)`, which `import ulmfit` calls for the
translator's "translation" and DeViSE's "image-search":

1. registers `pipeline_class` for `task` in transformers' `PIPELINE_REGISTRY`, so that where the package is imported
   `pipeline(task, model=folder)` builds it, without remote code. A task that transformers 5 removed ("translation")
   is taken off its list of removed tasks: the task then works for every model that `pt_model` loads, instead of
   raising a `KeyError`; nothing that worked before changes.
2. makes `model_class.save_pretrained` (and its subclasses') name the pipeline in `config.custom_pipelines` and write
   its code beside the modeling files, when the model is saved with remote code and `pt_model` is its auto class, so
   that `pipeline(task, model=folder, trust_remote_code=True)` builds the folder's copy where the package is missing.

The two meet in the configs: a config built by the installed package leaves out the `custom_pipelines` entries that
name a pipeline registered here, since `pipeline()` asks for `trust_remote_code` for any task a config names.

Remote code imports only flat, same-folder modules, so the pipeline file is written with its imports from the
package's model folders (`from ..models.devise.index_devise import DeviseIndex`) made sibling imports
(`from .index_devise import DeviseIndex`), and those files are copied beside it.
"""

import ast
import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

from transformers.dynamic_module_utils import get_relative_import_files
from transformers.pipelines import PIPELINE_REGISTRY, REMOVED_TASKS
from transformers.utils import logging


logger = logging.get_logger(__name__)

# model class -> {task: (pipeline class, names of the auto classes that load the model for it)}
_SAVED_PIPELINES: dict[type, dict[str, tuple[type, tuple[str, ...]]]] = {}


def register_custom_pipeline(task: str, pipeline_class: type, model_class: type, pt_model: type | tuple[type, ...]):
    """
    Register `pipeline_class` for `task` with transformers, and have the models of `model_class` saved with it.

    Args:
        task: the task name, new to transformers or one it removed.
        pipeline_class: a `Pipeline` subclass whose module imports only torch, transformers, its own folder and the
            package's model folders (those imports are flattened into the saved folder).
        model_class: the models (this class and its subclasses) whose `save_pretrained` names and writes the pipeline.
        pt_model: the auto class(es) `pipeline()` loads the model with; a model is saved with the pipeline only when it
            is registered for one of them (`register_for_auto_class`), so a base model sharing the config is not.

    Calling it again with the same arguments changes nothing.
    """
    pt_models = pt_model if isinstance(pt_model, tuple) else (pt_model,)
    if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is not pipeline_class:
        PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=pt_models)
    # `Pipeline.save_pretrained` would copy the pipeline's file verbatim (imports unresolved in the folder): without
    # this, it leaves the pipeline's entry and code to the model's `save_pretrained`, below
    if "_registered_impl" in vars(pipeline_class):
        del pipeline_class._registered_impl
    if REMOVED_TASKS.pop(task, None) is not None:
        logger.info(f"`pipeline({task!r})`, which transformers 5 removed, builds a {pipeline_class.__name__}.")

    _SAVED_PIPELINES.setdefault(model_class, {})[task] = (pipeline_class, tuple(c.__name__ for c in pt_models))
    if not getattr(model_class.save_pretrained, "_saves_custom_pipelines", False):
        model_class.save_pretrained = _saving_custom_pipelines(model_class.save_pretrained)


def _saving_custom_pipelines(save_pretrained):
    """`save_pretrained` that also writes the model's registered pipelines (see `register_custom_pipeline`)."""

    @functools.wraps(save_pretrained)
    def save_with_pipelines(model, save_directory, *args, **kwargs):
        previous = vars(model.config).get("custom_pipelines")
        custom_pipelines = dict(previous or {})
        to_write = []
        for task, (pipeline_class, pt_names) in _pipelines_of(type(model)).items():
            registered = PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is pipeline_class
            if registered and model._auto_class in pt_names:
                module = pipeline_class.__module__.split(".")[-1]
                custom_pipelines[task] = {"impl": f"{module}.{pipeline_class.__name__}", "pt": list(pt_names)}
                to_write.append(pipeline_class)
            elif custom_pipelines.pop(task, None) is not None and not registered:
                # an entry for code the folder will not hold
                logger.warning(f"No pipeline is registered for {task!r}, so the saved folder does not name one.")

        # the entries go into config.json only: the live config is left as it was
        _set_custom_pipelines(model.config, custom_pipelines)
        try:
            result = save_pretrained(model, save_directory, *args, **kwargs)
        finally:
            _set_custom_pipelines(model.config, previous)
        if args[0] if args else kwargs.get("is_main_process", True):  # save_pretrained(directory, is_main_process)
            for pipeline_class in to_write:
                save_pipeline_code(pipeline_class, save_directory)
        return result

    save_with_pipelines._saves_custom_pipelines = True
    return save_with_pipelines


def _set_custom_pipelines(config, custom_pipelines: dict | None):
    """Set `config.custom_pipelines`, or remove the attribute when there are none (as a config without any has it)."""
    if custom_pipelines:
        config.custom_pipelines = custom_pipelines
    else:
        vars(config).pop("custom_pipelines", None)


def _pipelines_of(model_class: type) -> dict[str, tuple[type, tuple[str, ...]]]:
    """The pipelines registered for `model_class` and its base classes (the nearest class's entry for a task wins)."""
    pipelines = {}
    for cls in reversed(model_class.__mro__):
        pipelines.update(_SAVED_PIPELINES.get(cls, {}))
    return pipelines


def save_pipeline_code(pipeline_class: type, save_directory: str | os.PathLike) -> list[Path]:
    """
    Write the file defining `pipeline_class` into `save_directory`, with its imports from the package's other folders
    made sibling imports, and every file it imports that way or relatively (recursively) copied beside it.

    Returns:
        The files written.
    """
    module = sys.modules[pipeline_class.__module__]
    source_file = Path(module.__file__)
    source = source_file.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    needed = {source_file.with_name(f"{name}.py") for name in _relative_imports(source)}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ImportFrom) and node.level > 1):
            continue
        name = importlib.util.resolve_name("." * node.level + (node.module or ""), module.__package__)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or Path(spec.origin).name == "__init__.py":
            raise ValueError(
                f"{source_file.name} imports {name!r}, which is not a module file, so it cannot be copied beside the "
                "pipeline for remote code."
            )
        lines[node.lineno - 1] = re.sub(
            r"from\s+\.+[\w.]*", f"from .{name.rsplit('.', 1)[-1]}", lines[node.lineno - 1], count=1
        )
        needed.add(Path(spec.origin))

    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    (save_directory / source_file.name).write_text("".join(lines), encoding="utf-8")
    copies = {
        file.name: file
        for needed_file in needed
        for file in (needed_file, *map(Path, get_relative_import_files(needed_file)))
    }
    for name, file in copies.items():
        (save_directory / name).write_bytes(file.read_bytes())
    return [save_directory / source_file.name, *(save_directory / name for name in copies)]


def _relative_imports(source: str) -> list[str]:
    """The sibling modules a source imports with `from .name import ...` (what transformers copies and loads)."""
    return re.findall(r"^\s*from\s+\.(\w+)\s+import", source, flags=re.MULTILINE)


__all__ = ["register_custom_pipeline", "save_pipeline_code"]
