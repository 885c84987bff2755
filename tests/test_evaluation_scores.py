"""evaluate's numbers recomputed independently: the model's outputs made again and scored with
scikit-image and numpy, not with the project's metrics (slow tier: a trained tiny model)."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from maskinpaint_jax import checkpoint, evaluation, inference, input_pipeline

pytestmark = pytest.mark.slow


def test_evaluate_scores_equal_scikit_image_on_the_same_outputs(tiny_workdir, tmp_path):
  config, g_params, _ = checkpoint.load_generator(str(tiny_workdir))
  (source,) = input_pipeline.open_sources(config.data.data_dir, "face_mask",
                                          config.data.image_size, "test")
  limit = min(8, len(source))
  _, results = evaluation.evaluate_model(None, str(tiny_workdir), split="test", limit=limit,
                                         batch_size=4, identity=False, num_samples=1,
                                         out=tmp_path / "eval")
  batch = input_pipeline.stack_inputs([source[i] for i in range(limit)])
  raw, comp = inference.make_filler(config.model, g_params, 4)(batch["masked"], batch["hole"])
  for method, out in (("ours_raw", raw), ("ours_composite", comp)):
    psnr = [peak_signal_noise_ratio(c, o, data_range=255) for c, o in zip(batch["clean"], out)]
    ssim = [structural_similarity(c, o, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=255)
            for c, o in zip(batch["clean"], out)]
    hole = batch["hole"][..., 0].astype(bool)
    hole_mse = [np.mean((c[h].astype(np.float64) - o[h]) ** 2)
                for c, o, h in zip(batch["clean"], out, hole)]
    hole_psnr = [10 * np.log10(255.0 ** 2 / max(m, 1e-10)) for m in hole_mse]
    got = results["datasets"][f"face_mask_{config.data.image_size}"]["summary"]["all"][method]
    assert got["psnr"] == pytest.approx(np.mean(psnr), abs=1e-3)
    assert got["ssim"] == pytest.approx(100 * np.mean(ssim), abs=1e-2)
    assert got["psnr_hole"] == pytest.approx(np.mean(hole_psnr), abs=1e-3)
