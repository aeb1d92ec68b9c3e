"""Portrait animation: ``fx animate`` engines (fomm, landmarks), motion normalisation, crop/paste-back, training.

Import-light on purpose: submodules import torch, cv2 or dlib only when used.
"""
