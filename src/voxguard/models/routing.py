"""Condition experts and a router: score a clip with the models trained for what happened to it.

One model trained on a mix of degradations trades one condition against another (docs/robustness.md).
A *routed* model instead has

- **experts**: detectors of the same recipe, each trained on clean clips plus degraded copies of
  one kind of degradation (both classes), e.g. a main model (``chain*2``), a codec expert
  (``only-codec*2``) and babble experts (``only-babble*4``);
- **a router** (:class:`ConditionRouter`): a multinomial logistic regression that tells from pooled
  statistics of its own view which kind of degradation a segment has suffered (``clean``,
  ``codec``, ``babble``, ``telephone`` or ``other``). It is trained on degradation kinds, never on real/fake labels;
- **mixing weights** (:class:`RoutingWeights`): each expert's score standardised, combined per
  router class (a class may average several experts) and weighted by the router's posteriors:
  ``score = sum_k P(class k) * sum_e mixing[e, k] * (s_e - mean_e) / scale_e``.

On disk a routed model is a fusion card whose members are the experts and the router and whose
ONNX graph (:func:`routing_to_onnx`) maps ``[expert scores..., router posteriors...]`` to the
mixed score; the scanner runs it like any fusion (:class:`voxguard.models.detector.Detector`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from voxguard.errors import ModelError
from voxguard.features.segmental import SegmentalConfig

#: The router's classes, in the order of its posteriors. "telephone" has a class of its own, though
#: it is scored by the same experts as "other": a telephone channel is unmistakable to the router
#: (recall 0.99), and without the class 4 % of mu-law clips went to the codec or babble experts,
#: which know nothing of it (mu-law EER +2.6 points; docs/robustness.md).
ROUTER_CLASSES = ("clean", "codec", "babble", "telephone", "other")
#: The augmentation policy whose copies teach the router each degraded class (voxguard.augment).
ROUTER_POLICIES = {"codec": "only-codec", "babble": "only-babble", "telephone": "only-telephone", "other": "only-other"}


def is_router_card(card: Any) -> bool:
    """A routed model's router: its card's output is class posteriors, not a score."""
    return bool(card.output.get("classes"))


def router_view(base: SegmentalConfig, extra_views: Sequence[str] = ()) -> SegmentalConfig:
    """The router's view: ``base`` (the experts' 7-kHz-capped views) and ``extra_views`` with the
    louder and quieter frames pooled apart (babble fills the quiet frames).

    ``extra_views`` must be capped at 7 kHz as well, e.g. ``("lfbe_7k",)``: the 0-7 kHz log
    filterbank energies show babble, loudest below 4 kHz, which the experts' 4-7 kHz view misses.

    A view up to 8 kHz routes MP3 better (it sees the codec's low-pass: 92 % of MP3-64k clips to
    the codec expert against 54 %), but the 7.3-8 kHz band also records how a file was resampled,
    so the same speech at 22.05/44.1/48 kHz was routed differently (P(fake) moved by up to 0.26;
    docs/robustness.md). Capped, the router shares the experts' frames and adds no feature cost.
    """
    views = tuple(base.views) + tuple(v for v in extra_views if v not in base.views)
    return replace(base, views=views, level_split="halves")


#: The router's heads: a linear one, or its posteriors averaged with boosted trees'.
ROUTER_HEADS = ("logistic", "logistic+trees")


@dataclass
class ConditionRouter:
    """Pooled segment rows -> P(class): StandardScaler + multinomial logistic regression, or
    (``head="logistic+trees"``) the mean of its posteriors and those of gradient-boosted trees.

    The trees see what a linear head cannot: under 10-dB babble the linear router sent 12.5 % of
    clips to the "other" experts (white noise, music, reverb), the averaged head 3.7 %
    (docs/robustness.md, "voxguard-v8").

    Parameters
    ----------
    features : SegmentalConfig
        The router's view (see :func:`router_view`).
    C : float
        Regularisation of the logistic head (larger = less).
    segment_s, hop_s : float
        Segment length and training hop (the experts').
    classes : tuple of str
        Class names, in the order of the integer labels given to :meth:`fit`.
    head : str
        One of :data:`ROUTER_HEADS`.
    trees : int
        Boosting iterations of the trees' head (at most; scikit-learn's early stopping on a
        random 10 % of the rows may stop sooner).
    seed : int
        Seed of the trees' head (its early-stopping split).
    """

    features: SegmentalConfig = field(default_factory=lambda: router_view(SegmentalConfig(gate_db=40.0)))
    C: float = 1.0
    segment_s: float = 4.0
    hop_s: float = 2.0
    classes: tuple[str, ...] = ROUTER_CLASSES
    head: str = "logistic"
    trees: int = 200
    seed: int = 0
    row_kind: str = field(default="pooled", init=False)
    pipeline_: Any = field(default=None, init=False, repr=False)
    trees_: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.head not in ROUTER_HEADS:
            raise ModelError(f"unknown router head {self.head!r}; choose from {', '.join(ROUTER_HEADS)}")

    def clone(self) -> ConditionRouter:
        return replace(self)

    def fit(self, X: np.ndarray, kinds: np.ndarray) -> ConditionRouter:
        """Fit on pooled rows ``X`` (n, n_dims) with class indices ``kinds`` (n,) into :attr:`classes`."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        kinds = np.asarray(kinds)
        if set(np.unique(kinds)) != set(range(len(self.classes))):
            raise ModelError(f"the router needs training rows of every class {self.classes}")
        X = np.asarray(X, dtype=np.float32)
        head = LogisticRegression(C=self.C, max_iter=3000)
        self.pipeline_ = make_pipeline(StandardScaler(), head).fit(X, kinds)
        self.trees_ = None
        if self.head == "logistic+trees":
            from sklearn.ensemble import HistGradientBoostingClassifier

            self.trees_ = HistGradientBoostingClassifier(max_iter=self.trees, random_state=self.seed).fit(X, kinds)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Posteriors, shape (n, n_classes); rows sum to 1."""
        X = np.asarray(X, dtype=np.float32)
        p = self.pipeline_.predict_proba(X)
        if self.trees_ is not None:
            p = 0.5 * (p + self.trees_.predict_proba(X))
        return p

    def to_onnx(self, probe: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        """ONNX bytes and the card's ``output`` block (output ``probabilities``, one column per class)."""
        import onnxruntime as ort

        from voxguard.models.router_graph import logistic_logits, posterior_graph, tree_logits

        heads = [logistic_logits(self.pipeline_)] + ([tree_logits(self.trees_)] if self.trees_ is not None else [])
        onx = posterior_graph(heads, probe.shape[1])
        session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
        out = session.run(["probabilities"], {"features": np.asarray(probe, dtype=np.float32)})[0]
        if not np.allclose(out, self.predict_proba(probe), atol=1e-4):
            raise ModelError("the router's ONNX conversion does not reproduce scikit-learn's posteriors")
        return onx, {"name": "probabilities", "index": None, "classes": list(self.classes)}

    def recipe(self) -> dict[str, Any]:
        """What a card records to retrain this router (:func:`router_from_card`)."""
        extra = {"head": self.head, "trees": self.trees, "seed": self.seed} if self.head != "logistic" else {}
        return {"classifier": "router", "C": self.C, **extra}

    def describe(self) -> str:
        head = f"StandardScaler + multinomial LogisticRegression(C={self.C})"
        if self.head == "logistic+trees":
            head = f"mean posteriors of {head} and HistGradientBoostingClassifier(max_iter={self.trees})"
        return (
            f"{head} on mean/std of "
            f"{'+'.join(self.features.views)} ({self.features.level_split} of the frames) over {self.segment_s:g} s"
        )


def router_from_card(card: Any) -> ConditionRouter:
    """An unfitted :class:`ConditionRouter` with the settings of a trained router's card (to retrain it)."""
    features = card.features
    recipe = card.training.get("recipe") or {}
    return ConditionRouter(
        features=SegmentalConfig.from_dict(features["segmental"]),
        C=float(recipe.get("C", 1.0)),
        segment_s=float(features["segment_s"]),
        hop_s=float(features.get("training_hop_s", float(features["segment_s"]) / 2)),
        classes=tuple(card.output["classes"]),
        # Cards written before the trees' head record only C: the class defaults (a logistic head) apply.
        **{key: recipe[key] for key in ("head", "trees", "seed") if key in recipe},
    )


@dataclass(frozen=True)
class RoutingWeights:
    """How expert scores and router posteriors make one score (see the module docstring).

    ``mixing[e][k]``: weight of expert ``e``'s standardised score in router class ``k``.
    """

    experts: tuple[str, ...]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    mixing: tuple[tuple[float, ...], ...]

    def apply(self, scores: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
        """Mixed score per row: ``scores`` (n, n_experts), ``posteriors`` (n, n_classes) -> (n,)."""
        z = (np.asarray(scores, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.sum((z @ np.asarray(self.mixing)) * np.asarray(posteriors, np.float64), axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experts": list(self.experts),
            "classes": list(self.classes),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "mixing": [list(row) for row in self.mixing],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RoutingWeights:
        return cls(
            tuple(d["experts"]),
            tuple(d["classes"]),
            tuple(float(v) for v in d["mean"]),
            tuple(float(v) for v in d["scale"]),
            tuple(tuple(float(v) for v in row) for row in d["mixing"]),
        )


def fit_routing(
    clean_scores: np.ndarray,
    experts: Sequence[str],
    class_experts: Mapping[str, Sequence[str]],
    classes: Sequence[str] | None = None,
) -> RoutingWeights:
    """Standardise each expert on its (out-of-fold, clean) scores; average the experts of each class.

    No labels are used: the mean and scale of ``clean_scores`` (n, n_experts) only put the experts on
    one scale, and a class served by several experts gets their standardised mean, rescaled to unit
    spread, so that every class's score has the same scale. ``classes``: the router's classes, in
    the order of its posteriors (default: the keys of ``class_experts``).
    """
    classes = tuple(class_experts) if classes is None else tuple(classes)
    S = np.asarray(clean_scores, np.float64)
    ok = np.isfinite(S).all(axis=1)
    if ok.sum() < 2:
        raise ModelError("fitting the routing needs finite out-of-fold scores of at least two clips")
    mean, scale = S[ok].mean(axis=0), S[ok].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = (S[ok] - mean) / scale
    mixing = np.zeros((len(experts), len(classes)))
    for k, cls in enumerate(classes):
        names = class_experts.get(cls)
        if not names or any(n not in experts for n in names):
            raise ModelError(f"router class {cls!r} needs experts from {list(experts)}, got {names}")
        columns = [list(experts).index(n) for n in names]
        spread = float(Z[:, columns].sum(axis=1).std()) or 1.0
        mixing[columns, k] = 1.0 / spread
    return RoutingWeights(
        tuple(experts), tuple(classes), tuple(mean.tolist()), tuple(scale.tolist()), tuple(map(tuple, mixing.tolist()))
    )


def routing_to_onnx(weights: RoutingWeights) -> bytes:
    """A tiny ONNX graph ``[expert scores, router posteriors] (n, M + K) -> mixed score (n,)``."""
    from onnx import TensorProto, helper, numpy_helper

    m, k = len(weights.experts), len(weights.classes)
    consts = {
        "mean": np.asarray(weights.mean, np.float32).reshape(1, m),
        "scale": np.asarray(weights.scale, np.float32).reshape(1, m),
        "mixing": np.asarray(weights.mixing, np.float32).reshape(m, k),
        "axis": np.asarray([1], np.int64),
        # Column ranges of the input: expert scores [0, m), router posteriors [m, m + k).
        "starts_s": np.asarray([0], np.int64),
        "ends_s": np.asarray([m], np.int64),
        "starts_p": np.asarray([m], np.int64),
        "ends_p": np.asarray([m + k], np.int64),
    }
    nodes = [
        helper.make_node("Slice", ["inputs", "starts_s", "ends_s", "axis"], ["scores"]),
        helper.make_node("Slice", ["inputs", "starts_p", "ends_p", "axis"], ["posteriors"]),
        helper.make_node("Sub", ["scores", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["standard"]),
        helper.make_node("MatMul", ["standard", "mixing"], ["per_class"]),
        helper.make_node("Mul", ["per_class", "posteriors"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis"], ["routed"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "voxguard_routing",
        [helper.make_tensor_value_info("inputs", TensorProto.FLOAT, [None, m + k])],
        [helper.make_tensor_value_info("routed", TensorProto.FLOAT, [None])],
        initializer=[numpy_helper.from_array(v, name=name) for name, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="voxguard")
    model.ir_version = 8  # readable by every onnxruntime >= 1.16 (the floor in pyproject)
    return model.SerializeToString()
