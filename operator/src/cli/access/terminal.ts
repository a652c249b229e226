// `fedgpu exec -it`: the local terminal in raw mode while the session lasts, as kubectl does, so
// keys reach the remote terminal as typed (no local echo or line editing) and Ctrl-C interrupts
// the remote command instead of ending the CLI.

/** What raw mode needs of stdin (process.stdin when it is a terminal). */
export interface TerminalInput {
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?: (raw: boolean) => unknown;
}

/**
 * Puts `input` in raw mode when the session has a remote terminal fed from it (-t with -i) and it
 * is a terminal. Returns what puts it back; call it once the session ends, however it ends.
 */
export function rawWhileSession(input: TerminalInput, options: { tty: boolean; stdin: boolean }): () => void {
  if (!options.tty || !options.stdin || !input.isTTY || !input.setRawMode) return () => {};
  const wasRaw = input.isRaw === true;
  input.setRawMode(true);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    input.setRawMode?.(wasRaw);
  };
}
