"""Seeded diffusion: each window's noise comes from its own generator, whatever shares its batch.

``sample_audio_latent`` and ``step_negative_branch`` replace two methods of the loaded model
(``castline.engines.vibevoice.loading``); ``DiffusionState`` carries what they need during one
``generate`` call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class DiffusionState:
    """What the diffusion hooks need during one ``generate`` call (mutable: rows change per step)."""

    generators: list
    guidance_scale: float
    active_rows: list[int] = dataclasses.field(default_factory=list)


def sample_audio_latent(self, positive_condition, negative_condition, noise_scheduler, num_diffusion_steps,
                         guidance_scale):
    """Replaces VibeVoice's diffusion sampling (same loop) so each row's initial noise comes from its own
    window's generator and the engine's guidance scale applies (generate() runs with guidance_scale=1)."""
    import torch

    state: DiffusionState = self._castline_diffusion
    device = next(self.model.diffusion_head.parameters()).device
    condition = torch.cat([positive_condition, negative_condition], dim=0).to(device)
    size = self.config.audio_config.hidden_size
    latent = torch.stack([torch.randn(size, generator=state.generators[row]) for row in state.active_rows])
    latent = latent.to(condition)
    noise_scheduler.set_timesteps(num_inference_steps=num_diffusion_steps)
    for timestep in noise_scheduler.timesteps:
        both = torch.cat([latent, latent], dim=0)
        eps = self.model.diffusion_head(both, timestep.repeat(both.shape[0]).to(both), condition=condition)
        conditioned, unconditioned = torch.split(eps, latent.shape[0], dim=0)
        guided = unconditioned + state.guidance_scale * (conditioned - unconditioned)
        latent = noise_scheduler.step(guided, timestep, latent).prev_sample
    return latent.unsqueeze(1)


def step_negative_branch(self, diffusion_mask, *args, **kwargs):
    """Records which rows synthesise a frame this step (called just before ``_sample_audio_latent``)."""
    self._castline_diffusion.active_rows = diffusion_mask.nonzero().view(-1).tolist()
    return type(self)._step_negative_branch(self, diffusion_mask, *args, **kwargs)


def window_generator(seed: int):
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
