"""Writing a trained Decoder in Hugging Face layout: F16 safetensors, config, generation config."""
import json
import struct

import numpy as np
import torch


def write_safetensors(path, tensors):
    """tensors: {name: float tensor}; stored as F16, names sorted, header padded to 8 bytes."""
    header = {'__metadata__': {'format': 'pt'}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = tensors[name].detach().to(torch.float16).contiguous().numpy().astype('<f2')
        b = a.tobytes()
        header[name] = {'dtype': 'F16', 'shape': list(a.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def checkpoint_tensors(model):
    """The HF tensors: state_dict without duplicates (lm_head is tied, so absent)."""
    return {k: v for k, v in model.state_dict().items()}


def rounded_to_f16(model):
    """Rounds every parameter to f16 in place (back in the model's dtype): the weights exactly as shipped."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(p.dtype))


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')


def write_f32(path, array):
    np.asarray(array, dtype='<f4').tofile(path)
