// scripts/build-cli.mjs replaces every generated `fileDesc("<base64>", deps)` in the bundle with
// the descriptor decoded at build time (and connect's import of one descriptor.proto enum with
// its value), so no command builds descriptor.proto's descriptor at start. Checked here: a bundle
// made with the same plugin, of every generated file of packages/proto and the well-known types
// it uses, gives descriptors equal to the ones @bufbuild/protobuf makes from the base64 at run
// time (same FileDescriptorProto bytes, same field JSON/local names, kinds and numbers), and does
// not contain descriptor.proto's boot code unless a file really depends on descriptor.proto.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { toBinary, type DescFile } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';

const dir = makeTmpDir('ztwim-embedded-desc-');
after(() => dir.cleanup());

function genFiles(d: string, out: string[] = []): string[] {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) genFiles(p, out);
    else if (name.endsWith('_pb.ts')) out.push(p);
  }
  return out;
}

/** What a descriptor says about each message and field, for comparing two of them. */
function shape(f: DescFile): unknown {
  return f.messages.map((m) => ({
    typeName: m.typeName,
    fields: m.fields.map((x) => [
      x.name,
      x.number,
      x.jsonName,
      x.localName,
      x.fieldKind,
      x.presence,
      'scalar' in x ? x.scalar : undefined,
      'packed' in x ? x.packed : undefined,
    ]),
    oneofs: m.oneofs.map((o) => [o.name, o.localName, o.fields.map((x) => x.name)]),
  }));
}

describe('embedded file descriptors in the CLI bundle', () => {
  const files = genFiles(join(REPO_ROOT, 'packages/proto/src/gen'));

  it('equal the descriptors fileDesc makes, for every generated file', async () => {
    assert.ok(files.length >= 15, `generated files: ${files.length}`);
    const { barrelImports } = (await import(pathToFileURL(join(REPO_ROOT, 'scripts/build-cli.mjs')).href)) as { barrelImports: esbuild.Plugin };
    const entry = dir.write('entry.ts', files.map((f, i) => `export * as m${i} from ${JSON.stringify(f)};`).join('\n'));
    const outfile = dir.file('bundle.mjs');
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      conditions: ['ztwim-source'],
      plugins: [barrelImports],
      logLevel: 'warning',
    });
    const { readFileSync } = await import('node:fs');
    assert.ok(!readFileSync(outfile, 'utf8').includes('fileDesc("'), 'the bundle still decodes base64 descriptors at run time');
    const bundled = (await import(pathToFileURL(outfile).href)) as Record<string, Record<string, unknown>>;
    let compared = 0;
    for (const [i, f] of files.entries()) {
      const original = (await import(pathToFileURL(f).href)) as Record<string, unknown>;
      const mod = bundled[`m${i}`] ?? {};
      for (const [name, value] of Object.entries(original)) {
        if (!name.startsWith('file_')) continue;
        const a = value as DescFile;
        const b = mod[name] as DescFile | undefined;
        assert.ok(b !== undefined, `${relative(REPO_ROOT, f)}: ${name} missing from the bundle`);
        assert.deepEqual(toBinary(FileDescriptorProtoSchema, b.proto), toBinary(FileDescriptorProtoSchema, a.proto), `${name}: FileDescriptorProto differs`);
        assert.deepEqual(shape(b), shape(a), `${name}: messages differ`);
        assert.deepEqual(
          b.services.map((s) => [s.typeName, s.methods.map((m) => [m.name, m.methodKind, m.input.typeName, m.output.typeName, m.idempotency])]),
          a.services.map((s) => [s.typeName, s.methods.map((m) => [m.name, m.methodKind, m.input.typeName, m.output.typeName, m.idempotency])]),
        );
        assert.deepEqual(
          b.enums.map((e) => [e.typeName, e.values.map((v) => [v.name, v.number, v.localName])]),
          a.enums.map((e) => [e.typeName, e.values.map((v) => [v.name, v.number, v.localName])]),
        );
        compared++;
      }
    }
    assert.equal(compared, files.length);
  });

  it("the commands' bundle builds descriptor.proto only in the chunks of code that depends on it (CSI)", async () => {
    const bundleDir = join(REPO_ROOT, 'packages/cli/dist/bundle');
    const { readFileSync } = await import('node:fs');
    const withBoot = readdirSync(bundleDir).filter(
      (n) => n.endsWith('.js') && readFileSync(join(bundleDir, n), 'utf8').includes('file_google_protobuf_descriptor = '),
    );
    assert.ok(withBoot.length <= 1 && withBoot.every((n) => n.startsWith('csi-')), `chunks building descriptor.proto: ${withBoot.join(', ')}`);
  });
});
