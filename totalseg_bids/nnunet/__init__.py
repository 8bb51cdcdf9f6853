"""The one home of nnU-Net v2's conventions: dataset folders and files, the
``nnUNet_*`` environment, training, prediction, model zips and the quick trainers.

Stages call this adapter; nothing else spells out nnU-Net's names.
"""
