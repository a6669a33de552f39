"""POPE (Li et al., EMNLP 2023): object-hallucination probes with random / popular / adversarial negatives.

- `sampler`: upstream's sampling algorithm, seeded;  `sources`: COCO instances, object lists, SynthScenes;
- `published` / `versions`: the published question files, their layouts and version fingerprints;
- `build`: splits from a sampling or from published files, and export back;  `hf`: lmms-lab/POPE layout;
- `benchmark`: the bundled SynthScenes `pope` benchmark;  `cli`: `deem-eval build pope`.
"""

from .benchmark import PopeBenchmark, PopeConfig
from .build import export_published, published_split, sampled_split, split_questions
from .published import Layout, PublishedFile, read_published, render, write_published
from .questions import SUBSETS, PopeQuestion, parse_sample_id, sample_id
from .sampler import ImageObjects, ObjectStats, SamplerConfig, Sampling, question_text, sample_pope, sample_subset
from .sources import ObjectSource, load_coco_instances, load_object_lists, read_image_list
from .versions import KnownVersion, Recognition, known_versions, recognise

__all__ = [
    "SUBSETS",
    "ImageObjects",
    "KnownVersion",
    "Layout",
    "ObjectSource",
    "ObjectStats",
    "PopeBenchmark",
    "PopeConfig",
    "PopeQuestion",
    "PublishedFile",
    "Recognition",
    "SamplerConfig",
    "Sampling",
    "export_published",
    "known_versions",
    "load_coco_instances",
    "load_object_lists",
    "parse_sample_id",
    "published_split",
    "question_text",
    "read_image_list",
    "read_published",
    "recognise",
    "render",
    "sample_id",
    "sample_pope",
    "sample_subset",
    "sampled_split",
    "split_questions",
    "write_published",
]
