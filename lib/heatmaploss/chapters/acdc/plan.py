"""The ACDC chapter, what is trained: the 3-D U-Net and the encoder classifiers per loss.

* the **U-Net** (Baumgartner et al. 2017) — one model at the profile's fixed learning rate;
* the **classifiers** — per task (``binary``: normal vs diseased; ``groups``: the five
  diagnostic groups) a head on the trained U-Net's frozen encoder, ``settings.classifier_seeds``
  independent seeds per loss: cross-entropy (``cce``) and the heatmap loss (``heatmap``:
  HiResCAM at the deepest encoder level must fall inside the heart given by the ground-truth
  masks). Both losses share data, augmentation, sampling, optimiser and epochs; only the
  heatmap term differs (:mod:`.classifiers`).

Each is a :class:`~heatmaploss.runs.spec.SearchSpec` of replicates (fixed hyperparameters, one
trial per seed), so the study runner trains, records and evaluates them like every other
chapter's models; every epoch's model is the last one (no selection on the validation
patients, which are also where the models are scored). TensorFlow-free.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from ...names import ACDC_TASKS, LOSS_GROUPS, check
from ...project import files
from ...project.profiles import AcdcSettings, Profile
from ...runs.spec import SearchSpec, TrialSettings

SEGMENTATION = "acdc_segmentation"
CLASSIFIER = "acdc_classifier"
#: The classifier losses, named as everywhere else in the project.
LOSSES = LOSS_GROUPS
SOURCES = ("fixture", "acdc")


def unet_settings(settings: AcdcSettings) -> dict:
    """The settings a U-Net depends on (classifier settings may change without retraining it)."""
    return {k: v for k, v in asdict(settings).items()
            if k.startswith("unet_") or k in ("fixture_preset", "target_spacing", "box")}


def classifier_settings(settings: AcdcSettings) -> dict:
    """The settings a task's classifiers depend on (not the forest's, not the task list)."""
    return {k: v for k, v in asdict(settings).items()
            if not k.startswith("diagnosis_") and k != "classifier_tasks"}


def digest(value: Any) -> str:
    """Short digest of a configuration: part of the search keys, so that other settings or
    other data become another search instead of a conflict with the recorded one."""
    text = json.dumps(files.to_jsonable(value), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"source={source!r}: allowed {', '.join(SOURCES)}")
    return source


def unet_spec(profile: Profile, seed: int, source: str, data: dict) -> SearchSpec:
    """The U-Net's study.

    Args:
        profile: the run's profile (its ``acdc`` settings).
        seed: the run's base seed.
        source: ``fixture`` (synthetic ACDC-format data) or ``acdc`` (the real data).
        data: description of the training and validation volumes (patients, box, root).
    """
    settings = profile.acdc
    config = unet_settings(settings)
    tag = digest({"config": config, "data": data})
    return SearchSpec(
        key=f"acdc-unet-{_check_source(source)}-{tag}-{profile.name}-seed{seed}",
        experiment=SEGMENTATION, protocol="baumgartner", group="unet", profile=profile.name,
        seed=seed, max_trials=1, replicates=True,
        fixed={"learning_rate": settings.unet_learning_rate},
        training=TrialSettings(epochs=settings.unet_epochs, objective="val_loss",
                               keep_best_epoch=False),
        config=config, data=data)


def classifier_spec(profile: Profile, seed: int, source: str, task: str, loss: str, data: dict,
                    unet_key: str) -> SearchSpec:
    """The study of one task's and loss's classifiers (``settings.classifier_seeds``
    replicates).

    Args:
        profile: the run's profile (its ``acdc`` settings).
        seed: the run's base seed.
        source: ``fixture`` or ``acdc``.
        task: ``binary`` or ``groups``.
        loss: ``cce`` or ``heatmap``.
        data: description of the training and validation volumes.
        unet_key: the search key of the U-Net whose encoder initialises the classifiers.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r}: allowed {', '.join(LOSSES)}")
    check("task", task, ACDC_TASKS)
    settings = profile.acdc
    config = {"task": task, "loss": loss, "unet": unet_key, **classifier_settings(settings)}
    tag = digest({"config": config, "data": data})
    return SearchSpec(
        key=(f"acdc-classifier-{task}-{loss}-{_check_source(source)}-{tag}-{profile.name}"
             f"-seed{seed}"),
        experiment=CLASSIFIER, protocol="controlled", group=loss, profile=profile.name,
        seed=seed, max_trials=settings.classifier_seeds, replicates=True,
        fixed={"learning_rate": settings.classifier_learning_rate},
        training=TrialSettings(epochs=settings.classifier_epochs, objective="val_loss",
                               keep_best_epoch=False),
        config=config, data=data)


__all__ = ["CLASSIFIER", "LOSSES", "SEGMENTATION", "SOURCES", "classifier_settings",
           "classifier_spec", "digest", "unet_settings", "unet_spec"]
