/**
 * An ONNX model (opset 13, IR version 7) of an exported graph (graph.ts), hand-encoded as protocol
 * buffers with @bufbuild/protobuf's BinaryWriter. Field numbers are onnx/onnx.proto's:
 *
 * ```
 * ModelProto        ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
 *                   opset_import 8, metadata_props 14
 * OperatorSetIdProto domain 1, version 2          StringStringEntryProto key 1, value 2
 * GraphProto        node 1, name 2, initializer 5, doc_string 10, input 11, output 12
 * NodeProto         input 1, output 2, name 3, op_type 4, attribute 5
 * AttributeProto    name 1, f 2, i 3, ints 8, type 20 (FLOAT 1, INT 2, INTS 7)
 * TensorProto       dims 1, data_type 2 (FLOAT 1, INT64 7), name 8, raw_data 9 (little-endian)
 * ValueInfoProto    name 1, type 2;  TypeProto tensor_type 1;  TypeProto.Tensor elem_type 1, shape 2
 * TensorShapeProto  dim 1;  Dimension dim_value 1, dim_param 2
 * ```
 *
 * Operators: Conv, BatchNormalization (inference: moving statistics), Relu, Add,
 * GlobalAveragePool, Flatten, Gemm (transB = 1). Input `input` `[N, 3, H, W]` float32, output
 * `logits` `[N, numClasses]`; `N` is symbolic. Initializers carry the PyTorch names of
 * {@link torchTensors} (the BatchNorms' `num_batches_tracked` is not part of the graph).
 */
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { ExportGraph, ExportTensor } from './graph.js';

/** The opset the model imports (BatchNormalization-9, Conv-11, Gemm-13, Flatten-13, ...). */
export const ONNX_OPSET = 13;
/** IR version of ONNX 1.8, the release that introduced opset 13. */
export const ONNX_IR_VERSION = 7;

const LEN = WireType.LengthDelimited;
const TENSOR_FLOAT = 1;

function str(w: BinaryWriter, field: number, s: string): void {
  w.tag(field, LEN).string(s);
}

function varint(w: BinaryWriter, field: number, v: number): void {
  w.tag(field, WireType.Varint).int64(v);
}

function message(w: BinaryWriter, field: number, body: (w: BinaryWriter) => void): void {
  w.tag(field, LEN).fork();
  body(w);
  w.join();
}

type Attr = { name: string; f: number } | { name: string; i: number } | { name: string; ints: number[] };

function attribute(w: BinaryWriter, a: Attr): void {
  message(w, 5, (w) => {
    str(w, 1, a.name);
    if ('f' in a) {
      w.tag(2, WireType.Bit32).float(a.f);
      varint(w, 20, 1);
    } else if ('i' in a) {
      varint(w, 3, a.i);
      varint(w, 20, 2);
    } else {
      for (const v of a.ints) varint(w, 8, v);
      varint(w, 20, 7);
    }
  });
}

function node(w: BinaryWriter, opType: string, name: string, inputs: string[], outputs: string[], attrs: Attr[] = []): void {
  message(w, 1, (w) => {
    for (const i of inputs) str(w, 1, i);
    for (const o of outputs) str(w, 2, o);
    str(w, 3, name);
    str(w, 4, opType);
    for (const a of attrs) attribute(w, a);
  });
}

function initializer(w: BinaryWriter, name: string, t: ExportTensor): void {
  message(w, 5, (w) => {
    for (const d of t.shape) varint(w, 1, d);
    varint(w, 2, t.dtype === 'float32' ? TENSOR_FLOAT : 7);
    str(w, 8, name);
    w.tag(9, LEN).bytes(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength));
  });
}

/** A float32 graph input or output with dims (a string is a symbolic dimension). */
function valueInfo(w: BinaryWriter, field: number, name: string, dims: (number | string)[]): void {
  message(w, field, (w) => {
    str(w, 1, name);
    message(w, 2, (w) =>
      message(w, 1, (w) => {
        varint(w, 1, TENSOR_FLOAT);
        message(w, 2, (w) => {
          for (const d of dims) message(w, 1, (w) => (typeof d === 'number' ? varint(w, 1, d) : str(w, 2, d)));
        });
      }),
    );
  });
}

/** What the model says of itself besides the graph. */
export interface OnnxModelInfo {
  /** Producer name and version (`mixup`, the package version). */
  producer: string;
  producerVersion: string;
  /** Model doc string (Markdown): what the input must be, how it was made. */
  docString: string;
  /** `metadata_props`, string → string. */
  metadata: Record<string, string>;
  /** Input height and width, and the number of classes. */
  height: number;
  width: number;
  numClasses: number;
}

/**
 * The bytes of the ONNX model of `graph` with weights `tensors` (torchTensors, PyTorch names).
 * @throws Error when an operation's tensor is missing from `tensors`.
 */
export function encodeOnnx(graph: ExportGraph, tensors: Map<string, ExportTensor>, info: OnnxModelInfo): Uint8Array {
  const need = (name: string): string => {
    if (!tensors.has(name)) throw new Error(`encodeOnnx: no tensor ${name}`);
    return name;
  };
  const used: string[] = [];
  const w = new BinaryWriter();
  varint(w, 1, ONNX_IR_VERSION);
  str(w, 2, info.producer);
  str(w, 3, info.producerVersion);
  str(w, 6, info.docString);
  message(w, 7, (w) => {
    for (const o of graph.ops) {
      if (o.op === 'bn') {
        const p = ['weight', 'bias', 'running_mean', 'running_var'].map((s) => need(`${o.module}.${s}`));
        used.push(...p);
        node(w, 'BatchNormalization', o.module, [o.x, ...p], [o.y], [{ name: 'epsilon', f: o.eps }]);
      } else if (o.op === 'relu') {
        node(w, 'Relu', o.y, [o.x], [o.y]);
      } else if (o.op === 'conv') {
        const wt = need(`${o.module}.weight`);
        used.push(wt);
        node(w, 'Conv', o.module, [o.x, wt], [o.y], [
          { name: 'kernel_shape', ints: [o.k, o.k] },
          { name: 'strides', ints: [o.stride, o.stride] },
          { name: 'pads', ints: [o.pad, o.pad, o.pad, o.pad] },
          { name: 'dilations', ints: [1, 1] },
          { name: 'group', i: 1 },
        ]);
      } else if (o.op === 'add') {
        node(w, 'Add', o.y, [o.a, o.b], [o.y]);
      } else if (o.op === 'gap') {
        node(w, 'GlobalAveragePool', `${o.y}.gap`, [o.x], [`${o.y}.gap`]);
        node(w, 'Flatten', o.y, [`${o.y}.gap`], [o.y], [{ name: 'axis', i: 1 }]);
      } else {
        const p = [need(`${o.module}.weight`), need(`${o.module}.bias`)];
        used.push(...p);
        node(w, 'Gemm', o.module, [o.x, ...p], [o.y], [{ name: 'transB', i: 1 }]);
      }
    }
    str(w, 2, 'mixup_resnet');
    for (const name of used) initializer(w, name, tensors.get(name)!);
    valueInfo(w, 11, graph.input, ['N', 3, info.height, info.width]);
    valueInfo(w, 12, graph.output, ['N', info.numClasses]);
  });
  message(w, 8, (w) => {
    str(w, 1, '');
    varint(w, 2, ONNX_OPSET);
  });
  for (const [k, v] of Object.entries(info.metadata)) {
    message(w, 14, (w) => {
      str(w, 1, k);
      str(w, 2, v);
    });
  }
  return w.finish();
}
