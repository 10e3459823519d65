export async function testCommand(_argv: string[]): Promise<number> {
  return 1;
}
