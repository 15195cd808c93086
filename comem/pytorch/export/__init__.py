"""Exporters of built continual models (``pip install 'comem[export]'``).

:mod:`comem.pytorch.export.onnx`: the step of a continual-inference model
through ``co.onnx.export`` (TorchScript exporter on torch 2.13), checked
tensor by tensor against comem's state manifest and run in ONNX Runtime.
"""
from comem.pytorch.export.onnx import (UNEXPORTABLE, ExportCheck, StreamMemory, check_export, check_model,
                                       check_tables, export_step, fix_state_axes, graph_memory, initial_state,
                                       library_state_order, warm_up)

__all__ = ["UNEXPORTABLE", "ExportCheck", "StreamMemory", "check_export", "check_model", "check_tables",
           "export_step", "fix_state_axes", "graph_memory", "initial_state", "library_state_order", "warm_up"]
