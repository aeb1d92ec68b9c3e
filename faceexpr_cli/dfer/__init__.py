"""Dynamic facial expression recognition (``fx finetune-dfer``, ``fx train videomae``): annotations, label maps,
frame sampling, UAR/WAR metrics, the fine-tuning and pretraining runs, evaluation and single-video prediction.

Importing this package imports nothing heavy; torch is loaded by the modules that run models.
"""
