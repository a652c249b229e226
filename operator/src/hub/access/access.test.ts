import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, maxFramePayload } from './frames.js';
import { userOf, type RequestHeaderConfig } from './identity.js';
import { BadRequest, parseOptions, parseTarget } from './request.js';

const config: RequestHeaderConfig = {
  caPem: '',
  allowedNames: ['front-proxy-client'],
  usernameHeaders: ['X-Remote-User'],
  groupHeaders: ['X-Remote-Group'],
  extraHeaderPrefixes: ['X-Remote-Extra-'],
};

function req(authorized: boolean, cn: string, headers: Record<string, string[]>): IncomingMessage {
  return { socket: { authorized, getPeerCertificate: () => ({ subject: { CN: cn } }) }, headersDistinct: headers } as unknown as IncomingMessage;
}

describe('access identity', () => {
  it('reads user, every group header and extras from the front proxy', () => {
    const user = userOf(req(true, 'front-proxy-client', { 'x-remote-user': ['alice'], 'x-remote-group': ['system:masters', 'system:authenticated'], 'x-remote-extra-scopes': ['a', 'b'] }), config);
    expect(user).toEqual({ user: 'alice', groups: ['system:masters', 'system:authenticated'], extra: { scopes: ['a', 'b'] } });
  });

  it('ignores identity headers from anyone but the apiserver front proxy', () => {
    expect(userOf(req(false, 'front-proxy-client', { 'x-remote-user': ['alice'] }), config)).toMatchObject({ error: expect.stringContaining('through the hub cluster apiserver') });
    expect(userOf(req(true, 'mallory', { 'x-remote-user': ['system:admin'] }), config)).toMatchObject({ error: expect.stringContaining('not an allowed requestheader name') });
    expect(userOf(req(true, 'front-proxy-client', {}), config)).toMatchObject({ error: 'no user in the forwarded request' });
  });
});

describe('access requests', () => {
  it('parses the aggregated paths and refuses anything else', () => {
    expect(parseTarget('/apis/access.fedgpu.io/v1alpha1/namespaces/ml/gpujobs/trainer/log')).toEqual({ namespace: 'ml', name: 'trainer', subresource: 'log' });
    expect(parseTarget('/apis/access.fedgpu.io/v1alpha1/namespaces/ml/gpujobs/trainer/proxy')).toBeUndefined();
    expect(parseTarget('/apis/access.fedgpu.io/v1alpha1/namespaces/ML/gpujobs/trainer/log')).toBeUndefined();
    expect(parseTarget('/apis/access.fedgpu.io/v1alpha1/namespaces/ml/gpujobs/../log')).toBeUndefined();
  });

  it('names the bad parameter', () => {
    expect(() => parseOptions('log', new URLSearchParams('replica=-1'))).toThrow(new BadRequest('replica must be between 0 and 4095'));
    expect(() => parseOptions('log', new URLSearchParams('tailLines=ten'))).toThrow('tailLines must be an integer');
    expect(() => parseOptions('exec', new URLSearchParams(''))).toThrow('command is required for exec');
    expect(() => parseOptions('portforward', new URLSearchParams('port=70000'))).toThrow('port must be between 0 and 65535');
    expect(() => parseOptions('log', new URLSearchParams('container=../x'))).toThrow('container must be a container name');
    expect(parseOptions('exec', new URLSearchParams('command=sh&command=-c&command=echo hi&stdin=true'))).toMatchObject({ command: ['sh', '-c', 'echo hi'], stdin: true, replica: 0, attempt: undefined });
  });
});

describe('exec frames', () => {
  it('decodes frames split anywhere', () => {
    const bytes = Buffer.concat([encodeFrame(1, Buffer.from('hello')), encodeFrame(2, Buffer.from('')), encodeFrame(3, Buffer.from('{"exitCode":7}'))]);
    const decoder = new FrameDecoder();
    const frames = [...bytes].flatMap((b) => decoder.push(Buffer.from([b])));
    expect(frames.map((f) => [f.channel, f.payload.toString()])).toEqual([[1, 'hello'], [2, ''], [3, '{"exitCode":7}']]);
  });

  it('refuses oversized frames and unknown channels', () => {
    const big = Buffer.alloc(5);
    big.writeUInt8(0, 0);
    big.writeUInt32BE(maxFramePayload + 1, 1);
    expect(() => new FrameDecoder().push(big)).toThrow('too large');
    expect(() => new FrameDecoder().push(encodeFrame(9, Buffer.from('x')))).toThrow('unknown channel');
  });
});
