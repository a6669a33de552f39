"""DEEM (ICLR 2025): CLIP ConvNeXt + multi-scale adapters -> perceiver resampler -> Vicuna with deformable
cross-attention, and CSR, its diffusion-aligned encoder training step.

Modules (nothing heavy is imported here, so `deem-eval list` stays fast):
    config       typed configuration, JSON round trip, differences
    presets      deem-tiny / deem-7b, component checkpoints, building a model
    convnext     the ConvNeXt trunk (timm / open_clip parameter names)
    visual       multi-scale adapters, position embedding, resampler, projections
    deform_attn  multi-scale deformable cross-attention (grid_sample)
    llm          attaching the cross-attention to an unmodified HF Llama (forward hooks)
    model        DeemModel: prompt, embeddings, generate, next-token logits, caption loss
    diffusion    the frozen diffusion teacher and its noise-prediction loss
    csr          CSR losses for DEEM and for an HF LLaVA-style vision tower
    align        the training loop (data order, accumulation, checkpoints, resume)
    align_cli    `deem-eval align`
    adapter      the `deem` model adapter
    checkpoint   our checkpoint format
"""
