"""DPM-Solver++ for VibeVoice's diffusion head, written here so no diffusers install is needed."""

from __future__ import annotations

import math

import numpy as np

from castline.core.errors import EngineError


class DpmSolverScheduler:
    """Deterministic DPM-Solver++ multistep sampler (order ≤ 2, final sigma 0), so no diffusers install is needed.

    Written from the published algorithm (Lu et al. 2022) to match diffusers' ``DPMSolverMultistepScheduler``
    for the options VibeVoice checkpoints ship: ``beta_schedule`` "squaredcos_cap_v2" (also "linear",
    "scaled_linear"), ``prediction_type`` "v_prediction" (also "epsilon", "sample"), ``timestep_spacing``
    "linspace" (also "leading", "trailing"). Timesteps are integer training steps (0 … ``num_train_timesteps`` − 1).
    """

    SUPPORTED = {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type", "solver_order",
                 "timestep_spacing", "steps_offset", "algorithm_type", "solver_type", "lower_order_final",
                 "final_sigmas_type"}

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02,
                 beta_schedule: str = "squaredcos_cap_v2", prediction_type: str = "v_prediction", solver_order: int = 2,
                 timestep_spacing: str = "linspace", steps_offset: int = 0, algorithm_type: str = "dpmsolver++",
                 solver_type: str = "midpoint", lower_order_final: bool = True,
                 final_sigmas_type: str = "zero") -> None:
        # lower_order_final is accepted for diffusers-style configs: with a final sigma of 0 the last step is
        # first-order either way, and it changes nothing else below order 3.
        import torch

        fixed = {"algorithm_type": (algorithm_type, "dpmsolver++"), "solver_type": (solver_type, "midpoint"),
                 "final_sigmas_type": (final_sigmas_type, "zero")}
        for key, (value, supported) in fixed.items():
            if value != supported:
                raise ValueError(f"{key} '{value}' is not supported (only '{supported}')")
        if prediction_type not in ("v_prediction", "epsilon", "sample"):
            raise ValueError(f"prediction_type '{prediction_type}' is not supported")
        if timestep_spacing not in ("linspace", "leading", "trailing"):
            raise ValueError(f"timestep_spacing '{timestep_spacing}' is not supported")
        if solver_order not in (1, 2):
            raise ValueError(f"solver_order {solver_order} is not supported (1 or 2)")
        if beta_schedule == "squaredcos_cap_v2":
            def alpha_bar(t: float) -> float:
                return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

            betas = torch.tensor([min(1 - alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps),
                                      0.999) for i in range(num_train_timesteps)], dtype=torch.float32)
        elif beta_schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        elif beta_schedule == "scaled_linear":
            betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float32) ** 2
        else:
            raise ValueError(f"beta_schedule '{beta_schedule}' is not supported")
        self.num_train_timesteps = num_train_timesteps
        self.prediction_type = prediction_type
        self.solver_order = solver_order
        self.timestep_spacing = timestep_spacing
        self.steps_offset = steps_offset
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.int64)
        self.sigmas = None
        self._outputs: list = []
        self._lower_order_nums = 0
        self._step_index: int | None = None

    def set_timesteps(self, num_inference_steps: int, device=None) -> None:
        """Choose ``num_inference_steps`` timesteps (descending) and reset the multistep state."""
        import torch

        total = self.num_train_timesteps
        if self.timestep_spacing == "linspace":
            steps = np.linspace(0, total - 1, num_inference_steps + 1).round()[::-1][:-1]
        elif self.timestep_spacing == "leading":
            ratio = total // (num_inference_steps + 1)
            steps = (np.arange(0, num_inference_steps + 1) * ratio).round()[::-1][:-1] + self.steps_offset
        else:
            steps = np.arange(total, 0, -total / num_inference_steps).round() - 1
        steps = steps.astype(np.int64).copy()
        all_sigmas = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5).numpy()
        sigmas = np.interp(steps, np.arange(0, len(all_sigmas)), all_sigmas)
        self.sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))
        self.timesteps = torch.from_numpy(steps).to(device=device, dtype=torch.int64)
        self._outputs = []
        self._lower_order_nums = 0
        self._step_index = None

    def step(self, model_output, timestep, sample, **kwargs) -> "_StepOutput":
        """One solver step from ``sample`` at ``timestep`` to the next timestep (``.prev_sample``)."""
        if self._step_index is None:
            matches = (self.timesteps == timestep).nonzero()
            self._step_index = int(matches[1] if len(matches) > 1 else matches[0]) if len(matches) else \
                len(self.timesteps) - 1
        index = self._step_index
        final = index == len(self.timesteps) - 1
        x0 = self._predicted_sample(model_output.float(), sample.float(), index)
        self._outputs = (self._outputs + [x0])[-self.solver_order:]
        if self.solver_order == 1 or self._lower_order_nums < 1 or final:
            previous = self._first_order(x0, sample.float(), index)
        else:
            previous = self._second_order(self._outputs, sample.float(), index)
        self._lower_order_nums = min(self._lower_order_nums + 1, self.solver_order)
        self._step_index += 1
        return _StepOutput(previous.to(model_output.dtype))

    def _alpha_sigma(self, index: int):
        import torch

        sigma = self.sigmas[index]
        alpha = 1 / ((sigma ** 2 + 1) ** 0.5)
        return alpha, sigma * alpha, torch.log(alpha) - torch.log(sigma * alpha)

    def _predicted_sample(self, model_output, sample, index: int):
        alpha, sigma, _ = self._alpha_sigma(index)
        if self.prediction_type == "v_prediction":
            return alpha * sample - sigma * model_output
        if self.prediction_type == "epsilon":
            return (sample - sigma * model_output) / alpha
        return model_output

    def _first_order(self, x0, sample, index: int):
        import torch

        alpha_t, sigma_t, lambda_t = self._alpha_sigma(index + 1)
        _, sigma_s, lambda_s = self._alpha_sigma(index)
        h = lambda_t - lambda_s
        return (sigma_t / sigma_s) * sample - (alpha_t * (torch.exp(-h) - 1.0)) * x0

    def _second_order(self, outputs, sample, index: int):
        import torch

        alpha_t, sigma_t, lambda_t = self._alpha_sigma(index + 1)
        _, sigma_s0, lambda_s0 = self._alpha_sigma(index)
        _, _, lambda_s1 = self._alpha_sigma(index - 1)
        m0, m1 = outputs[-1], outputs[-2]
        h, h_0 = lambda_t - lambda_s0, lambda_s0 - lambda_s1
        d0, d1 = m0, (1.0 / (h_0 / h)) * (m0 - m1)
        return ((sigma_t / sigma_s0) * sample - (alpha_t * (torch.exp(-h) - 1.0)) * d0
                - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * d1)


class _StepOutput:
    __slots__ = ("prev_sample",)

    def __init__(self, prev_sample) -> None:
        self.prev_sample = prev_sample


def scheduler_for(generation_config, model: str) -> DpmSolverScheduler:
    name = getattr(generation_config, "noise_scheduler_class", None) or "DPMSolverMultistepScheduler"
    settings = dict(getattr(generation_config, "noise_scheduler_config", None) or {})
    if name != "DPMSolverMultistepScheduler":
        raise EngineError(f"vibevoice model '{model}' asks for noise scheduler {name}; castline provides "
                          "DPMSolverMultistepScheduler only")
    unknown = sorted(set(settings) - DpmSolverScheduler.SUPPORTED)
    if unknown:
        raise EngineError(f"vibevoice model '{model}': noise scheduler setting(s) {', '.join(unknown)} not supported")
    try:
        return DpmSolverScheduler(**settings)
    except ValueError as error:
        raise EngineError(f"vibevoice model '{model}': {error}") from error
