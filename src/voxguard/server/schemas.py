"""Request and response bodies (pydantic): they make the OpenAPI document precise."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorReply(BaseModel):
    """Every error reply: a stable machine-readable ``error`` code and a readable ``message``."""

    error: str = Field(examples=["not_audio"])
    message: str = Field(examples=["not a recognised audio format"])


class SegmentOut(BaseModel):
    start_s: float | None
    end_s: float | None
    probability: float | None
    score: float | None
    speech_fraction: float | None
    eligible: bool
    watermark: float | None = Field(default=None, description="Perth watermark confidence (with `watermark`).")
    wide_band: float | None = Field(
        default=None,
        description="The wide-band companion's own P(fake) (8-9.8 kHz included), when it was used; "
        "`probability` is then the mix of both models.",
    )


class ScanError(BaseModel):
    code: str
    message: str


class PassageOut(BaseModel):
    start_s: float
    end_s: float
    confidence: float


class WatermarkOut(BaseModel):
    """The Perth watermark check over the whole recording (only when the request asked for it)."""

    scheme: str = Field(examples=["perth-implicit"])
    confidence: float | None
    detected: bool
    threshold: float
    signal_s: float = Field(description="Seconds of signal the decoder read; a mark is claimed from 2 s on.")
    note: str | None = None
    passages: list[PassageOut] = Field(default=[], description="Timeline stretches that reach the threshold.")


class WideBandOut(BaseModel):
    """What the model's wide-band companion did (present when the model has one)."""

    model: str = Field(examples=["voxguard-wb"])
    used: bool = Field(description="Whether its 8-9.8 kHz scores were mixed into the segment probabilities.")
    top_band_db: float | None = Field(description="The recording's 8-9.8 kHz power relative to its total, in dB.")
    segments: int
    note: str | None = None


class ScanOut(BaseModel):
    """A scan result: ``ScanResult.to_dict()`` plus the stored scan's ``id``."""

    model_config = ConfigDict(protected_namespaces=())

    id: str
    created: str | None
    sha256: str
    path: str
    verdict: Literal["REAL", "FAKE", "UNCERTAIN"] | None
    probability: float | None
    score: float | None
    threshold: float | None
    operating_point: str
    margin: float | None
    model: str
    duration_s: float | None
    speech_s: float | None
    segment_s: float | None
    hop_s: float | None
    mode: str | None
    reason: str | None
    error: ScanError | None = None
    elapsed_s: float | None
    plot: str | None = None
    watermark: WatermarkOut | None = None
    wide_band: WideBandOut | None = None
    timeline: list[SegmentOut]


class FeedbackIn(BaseModel):
    """A correction of a scan's verdict."""

    model_config = ConfigDict(extra="forbid")

    label: Literal["real", "fake"] = Field(description="The true class of the recording.")
    note: str | None = Field(default=None, max_length=2000)


class FeedbackOut(BaseModel):
    id: str
    scan_id: str
    label: Literal["real", "fake"]
    note: str | None
    created: str | None


class StoredScanOut(ScanOut):
    """A stored scan with the feedback given on it."""

    feedback: list[FeedbackOut] = []


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    model_type: str
    created: str
    loaded: bool
    default: bool
    segment_s: float | None = None
    thresholds: dict[str, float] = {}
    metrics: dict[str, Any] = {}
    notes: list[str] = []


class ModelsOut(BaseModel):
    loaded: str
    models: list[ModelInfo]


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    model: str | None
    database: str
    schema_version: int | None = None
    scans_running: int = 0
