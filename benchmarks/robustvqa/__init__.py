"""RobustVQA (DEEM paper): yes/no "Is {class} the main object in this image?" questions on ImageNet-A, -R
and -V2, each image asked once with its true class and once with a hard negative mined by CLIP.

Modules: `classes` (ImageNet table, class maps), `sources` (folders, HF datasets), `miners` (clip, random),
`cache` (image-embedding cache), `build` (the split), `deem_format` (DEEM's robustvqa_test.json), `cli`
(`deem-eval build robustvqa`), `mini` (the bundled synthetic mini RobustVQA) and `benchmark` (the
`robustvqa` benchmark). Importing this package imports no torch.
"""
