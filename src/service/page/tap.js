// The live view's microphone tap: an AudioWorklet that hands the page blocks of about 85 ms of
// mono samples at the audio context's rate, which the page sends to /v1/stream as 16-bit PCM.
// Blocks, not the worklet's 128-sample quanta, so the socket carries a dozen messages a second.
"use strict";

const BLOCK = 4096;

class SynthscanTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let at = 0;
      while (at < channel.length) {
        const n = Math.min(channel.length - at, BLOCK - this.filled);
        this.block.set(channel.subarray(at, at + n), this.filled);
        this.filled += n;
        at += n;
        if (this.filled === BLOCK) {
          this.port.postMessage(this.block);
          this.block = new Float32Array(BLOCK);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("synthscan-tap", SynthscanTap);
