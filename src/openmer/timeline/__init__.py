"""Emotion timelines of long recordings: streaming decode, speech detection, windows scored in
groups, smoothing, segments, EDER (``docs/timeline.md``)."""

from openmer.timeline.core import Timeline, TimelineConfig, read_timeline, timeline
from openmer.timeline.segments import NO_SPEECH, Segment, eder, segments, smooth

__all__ = ["NO_SPEECH", "Segment", "Timeline", "TimelineConfig", "eder", "read_timeline", "segments", "smooth",
           "timeline"]
