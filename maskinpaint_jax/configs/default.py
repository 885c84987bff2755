r"""The paper's configuration (Liu et al., Table I) on the 128 px face-mask dataset.

Build the data (40,000 photos drawn at random, per CelebA split), then train (one GPU node; see
launch/ for several, and for one model per occlusion and the ablations in one command):

  python -m maskinpaint_jax.tools.build --src /path/img_align_celeba --partition /path/list_eval_partition.txt \
      --data_dir data/tfds --occlusions face_mask,rect --limit 40000
  python -m maskinpaint_jax.tools.train --config configs/default.py --workdir runs/paper/face_mask/full

Table I: gamma_adv 0.01, gamma_L1 0.95, gamma_TV 0.04, Adam lr 2e-4, batch 1500, 1000 epochs.
Everything the paper leaves open is chosen here and explained in docs/architecture.md.
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.seed = 0

  # --- data (built by `python -m maskinpaint_jax.tools.build`) ---
  config.data = ml_collections.ConfigDict()
  config.data.data_dir = "data/tfds"
  config.data.train_datasets = "face_mask"     # builder config(s), comma-separated = mixture
  # What evaluate.py reports; "" = the training datasets. The paper scores each occlusion with a
  # model trained on it (Table II: face_mask, Table III: rect; launch/ trains one per occlusion).
  config.data.eval_datasets = ""
  config.data.validation_split = "validation"   # another split only on purpose, e.g. "train"
  config.data.image_size = 128                  # paper III.A: all images scaled to 128x128
  config.data.random_flip = True
  # Not in the paper: draw each training example's face mask anew every epoch (Algorithm 1 on
  # the stored clean crop and landmarks) instead of the one mask stored per photo.
  config.data.fresh_masks = False
  config.data.num_workers = 8                   # Grain worker processes; 0 = in-process
  config.data.prefetch_batches = 4

  # --- schedule (Table I) ---
  config.batch_size = 1500                      # global batch, split evenly over all devices
  config.num_epochs = 1000
  config.num_train_steps = -1                   # > 0 overrides num_epochs

  # --- generator: MMRM U-Net (paper II.A, Fig. 2/3) ---
  config.model = ml_collections.ConfigDict()
  config.model.base_width = 64
  config.model.width_multipliers = (1, 2, 4, 8)  # one U-Net level each: 128 -> 8 px bottleneck
  config.model.norm = "group"                   # "group" | "none": the paper names none
  config.model.mmrm = True                      # False: plain residual block (ablation "w/o MMRM")
  config.model.mmrm_channel_attention = True    # ablation "w/o channel attention in MMRM"
  config.model.mmrm_spatial_attention = True    # ablation "w/o spatial attention in MMRM"
  config.model.up_channel_attention = True      # ablation "w/o channel attention in up-sampling"
  config.model.spatial_attention_kernel = 7     # CBAM-style spatial attention, ref. [25]
  config.model.spatial_attention_impl = "auto"  # "conv" | "s2d" (same maths, fast on CPU) | "auto"
  config.model.non_blind = False                # True: hole map as a 4th input channel
  config.model.dtype = "float32"                # compute dtype; "bfloat16" = mixed precision

  # --- discriminator: spectral-norm PatchGAN (paper II.B, Fig. 4) ---
  config.disc = ml_collections.ConfigDict()
  config.disc.widths = (64, 128, 256)           # + a final 1-channel conv: 4 layers, 3x3, stride 2

  # --- losses (eq. 1-5) ---
  config.loss = ml_collections.ConfigDict()
  config.loss.adv_weight = 0.01                 # gamma_adv
  config.loss.l1_weight = 0.95                  # gamma_L1
  config.loss.tv_weight = 0.04                  # gamma_TV
  config.loss.tv_epsilon = 1e-6                 # sqrt(. + eps): finite gradient at 0
  config.loss.hole_l1_weight = 0.0              # not in the paper: extra L1 inside the hole
  # Not in the paper (losses.generator_loss): a perceptual term, LPIPS-VGG16 ("lpips_vgg") or
  # plain VGG16 features ("vgg_features"), on the composite ("hole") or the raw output
  # ("image"); and discriminator feature matching (pix2pixHD).
  config.loss.perceptual_weight = 0.0
  config.loss.perceptual_net = "lpips_vgg"
  config.loss.perceptual_region = "hole"
  config.loss.feature_matching_weight = 0.0

  # --- optimiser (Table I: Adam, 2e-4; betas are pix2pix's, the paper gives none) ---
  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 2e-4
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999

  # Start G from an exported model folder (pretrained/...) or a training workdir's newest
  # checkpoint instead of random weights ("" = random); D and the optimisers start fresh. Read
  # only when the workdir has no checkpoint: a resume continues from the checkpoint.
  config.init_generator = ""

  # --- bookkeeping ---
  config.log_every_steps = 50
  config.eval_every_steps = 1000                # validation PSNR/SSIM + image grid
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.num_eval_images = 64                   # fixed validation batch
  # What each evaluator computes: names of maskinpaint_jax/evaluators.py METRICS (big_vision's
  # config.evals). The paper's III.C.2 metrics (PSNR, SSIM, LPIPS) and hole PSNR, which is what
  # inpainting changes; `identity` needs face_recognition and the faces' landmarks, so only the
  # test split's evaluation (evaluate.py) computes it.
  config.evals = ml_collections.ConfigDict()
  config.evals.validation = "psnr,ssim,psnr_hole,lpips,lpips_vgg"  # every eval_every_steps
  config.evals.test = "psnr,psnr_hole,ssim,lpips,lpips_vgg,identity"  # evaluate.py
  return config
