"""DEEM (ICLR 2025): CLIP ConvNeXt + multi-scale adapters -> perceiver resampler -> Vicuna with deformable
cross-attention, and CSR, its diffusion-aligned encoder training step.

Subpackages by job; imports go one way only (model <- training <- micro; model <- adapter), and nothing
heavy is imported here, so `deem-eval list` stays fast:

    model/       the architecture and its checkpoints (imports neither training nor the adapter)
        config          typed configuration, JSON round trip, differences
        presets         deem-tiny / deem-7b / deem-micro(-nocsr), component checkpoints, building a model
        convnext        the ConvNeXt trunk (timm / open_clip parameter names)
        visual          multi-scale adapters, position embedding, resampler (resampler.py), projections
        deform_attn     multi-scale deformable cross-attention (grid_sample)
        llm             attaching the cross-attention to an unmodified HF Llama (forward hooks)
        model           DeemModel: prompt, embeddings, generate, next-token logits, caption loss
        init            seeded initialisation, moving modules
        tiny_tokenizer  the deem-tiny and DEEM-micro tokenizers (trained locally, no download)
        images          image decoding and pixels
        checkpoint      our checkpoint format; WEIGHTS_DIR, where the shipped checkpoints live
        devices         device / dtype choice (adapter and align)
    training/    `deem-eval align`: DEEM's stages and CSR
        stages + configs/   the stage configs (TOML, package data); optim: parameter groups, AdamW, schedule
        data, instruct_data caption sources (stage 1) and instruction data (stage 2)
        diffusion, csr      the frozen diffusion teacher and the CSR losses; mmfs: MMFSNet
        align, train        the training loops (data order, accumulation, checkpoints, resume)
        align_cli, stage_run  `deem-eval align`
    micro/       `deem-eval train-micro`: DEEM-micro's world, micro-CLIP / -SD / -LLM, both stages, ablation
    adapter      the `deem` model adapter (shipped presets, checkpoint labels)
    weights/     the shipped DEEM-micro, DEEM-micro* and micro-CLIP checkpoints (package data)
"""
