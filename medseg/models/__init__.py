"""Segmenters: U-Net, FCN, stacked denoising autoencoder; ``build_model`` registry. Imports torch only."""
